-- =============================================================================
-- 02_crud.sql  --  Create, read, update, delete on a DuckLake table
-- =============================================================================
--
--     ducklake-sink sql CONNECTOR.json sql/02_crud.sql
--
-- `lake` is attached and is the current catalog (see 01_setup.sql).
-- A DuckLake table is used with plain DuckDB SQL. What is different from a
-- DuckDB file is underneath: every committed transaction becomes a SNAPSHOT of
-- the whole lake, new rows are written as Parquet files (or inlined into the
-- catalog when the insert is small), and UPDATE / DELETE never rewrite a file:
-- they add small delete files that mark rows as gone.
--
-- This file writes only to its own tables (demo_products, orders_by_status).
-- The sink-owned tables orders and __ducklake_sink_offsets are only read.
-- It can be run any number of times.
-- =============================================================================


-- -----------------------------------------------------------------------------
-- CREATE
-- -----------------------------------------------------------------------------
-- CREATE OR REPLACE makes the file re-runnable: a second run starts over with
-- a fresh, empty table (the old one stays readable by time travel).
CREATE OR REPLACE TABLE demo_products (
    product_id INTEGER,
    name       VARCHAR,
    category   VARCHAR,
    price      DECIMAL(10, 2),
    in_stock   BOOLEAN
);

-- -----------------------------------------------------------------------------
-- INSERT
-- -----------------------------------------------------------------------------
-- Each statement outside an explicit transaction is its own commit, so each
-- one below makes one snapshot.
INSERT INTO demo_products VALUES
    (1, 'widget',    'tools',   4.99, true),
    (2, 'gadget',    'tools',  19.99, true),
    (3, 'gizmo',     'toys',    7.50, false),
    (4, 'doohickey', 'toys',    2.25, true),
    (5, 'sprocket',  'parts',   0.99, true);

-- INSERT ... SELECT works as everywhere in DuckDB: here, one product row for
-- every product name the sink has seen in orders that is not in the list yet.
INSERT INTO demo_products
SELECT 100 + row_number() OVER (ORDER BY product) AS product_id,
       product                                    AS name,
       'from orders'                              AS category,
       round(avg(price), 2)                       AS price,
       true                                       AS in_stock
FROM orders
WHERE product IS NOT NULL
  AND product NOT IN (SELECT name FROM demo_products)
GROUP BY product;

-- -----------------------------------------------------------------------------
-- SELECT
-- -----------------------------------------------------------------------------
FROM demo_products ORDER BY product_id;

SELECT category, count(*) AS products, min(price) AS cheapest, max(price) AS dearest
FROM demo_products
GROUP BY category
ORDER BY category;

-- -----------------------------------------------------------------------------
-- UPDATE
-- -----------------------------------------------------------------------------
-- 10 % dearer tools. DuckLake marks the old rows as deleted and writes the new
-- versions, the old values stay readable at the previous snapshot.
UPDATE demo_products
SET price = round(price * 1.10, 2)
WHERE category = 'tools';

FROM demo_products WHERE category = 'tools' ORDER BY product_id;

-- -----------------------------------------------------------------------------
-- DELETE
-- -----------------------------------------------------------------------------
DELETE FROM demo_products WHERE NOT in_stock;

SELECT count(*) AS products_left FROM demo_products;

-- -----------------------------------------------------------------------------
-- Several changes in ONE snapshot, with a commit message
-- -----------------------------------------------------------------------------
-- Inside BEGIN ... COMMIT all changes land in one snapshot. The commit message
-- (author, message, optional extra_info) is attached to that snapshot with
--     CALL lake.set_commit_message(author, message, extra_info => '...')
-- which must run inside the transaction, before COMMIT. This is exactly how the
-- sink labels each flush (author ducklake-sink).
BEGIN TRANSACTION;

INSERT INTO demo_products VALUES (6, 'thingamajig', 'toys', 12.00, true);

UPDATE demo_products SET in_stock = false WHERE name = 'doohickey';

CALL lake.set_commit_message(
    'sql-tutorial',
    'add thingamajig, doohickey sold out',
    extra_info => '{"file": "02_crud.sql"}'
);

COMMIT;

-- The newest snapshots of the lake: the one just committed carries the message.
-- changes lists what each snapshot did (table ids, inlined or file inserts, ...).
SELECT snapshot_id, snapshot_time, author, commit_message, commit_extra_info, changes
FROM lake.snapshots()
ORDER BY snapshot_id DESC
LIMIT 5;

FROM demo_products ORDER BY product_id;

-- -----------------------------------------------------------------------------
-- Reading what the sink wrote
-- -----------------------------------------------------------------------------
-- Revenue per order status.
SELECT status,
       count(*)                         AS orders,
       sum(quantity)                    AS items,
       round(sum(quantity * price), 2)  AS revenue,
       round(avg(quantity * price), 2)  AS avg_order_value
FROM orders
GROUP BY status
ORDER BY revenue DESC;

-- "timestamp" is an ISO-8601 string. Cast it to use it as a time: orders and
-- revenue per hour (try_cast gives NULL instead of failing on a bad string).
SELECT date_trunc('hour', try_cast("timestamp" AS TIMESTAMPTZ)) AS hour,
       count(*)                                                 AS orders,
       round(sum(quantity * price), 2)                          AS revenue
FROM orders
GROUP BY hour
ORDER BY hour DESC
LIMIT 24;

-- The best customers.
SELECT customer_id,
       count(*)                        AS orders,
       round(sum(quantity * price), 2) AS spent
FROM orders
WHERE status <> 'cancelled'
GROUP BY customer_id
ORDER BY spent DESC, customer_id
LIMIT 10;

-- A sink table joins with any other table of the lake.
SELECT p.name, p.price AS list_price, count(o.order_id) AS orders,
       round(avg(o.price), 2) AS avg_paid
FROM demo_products AS p
LEFT JOIN orders AS o ON o.product = p.name
GROUP BY p.name, p.price
ORDER BY orders DESC, p.name;

-- -----------------------------------------------------------------------------
-- CREATE TABLE AS SELECT: materialise a summary as a new lake table
-- -----------------------------------------------------------------------------
CREATE OR REPLACE TABLE orders_by_status AS
SELECT status,
       count(*)                        AS orders,
       round(sum(quantity * price), 2) AS revenue,
       max(order_id)                   AS up_to_order_id,
       now()                           AS computed_at
FROM orders
GROUP BY status;

FROM orders_by_status ORDER BY revenue DESC;
