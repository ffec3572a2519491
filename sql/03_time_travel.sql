-- =============================================================================
-- 03_time_travel.sql  --  Snapshots, commit messages and time travel
-- =============================================================================
--
--     ducklake-sink sql CONNECTOR.json sql/03_time_travel.sql
--
-- Every commit to a DuckLake creates a snapshot, numbered 0, 1, 2, ... Any table
-- can be read as it was at any snapshot that has not been expired:
--
--     FROM some_table AT (VERSION => 42)
--     FROM some_table AT (TIMESTAMP => TIMESTAMPTZ '2026-11-26 03:00:00+00')
--
-- The sink commits once per flush and labels the snapshot with a commit
-- message, so its history doubles as an audit log of the ingestion.
--
-- Snapshot ids are not known in advance, so this file looks them up and keeps
-- them in session variables (SET VARIABLE x = ..., read back with
-- getvariable('x')). getvariable() is allowed inside AT (...), a subquery is not.
--
-- Only demo_products is written to. The file can be run any number of times.
-- =============================================================================


-- -----------------------------------------------------------------------------
-- 1. The history of the lake
-- -----------------------------------------------------------------------------
-- Columns of lake.snapshots():
--   snapshot_id, snapshot_time, schema_version, changes (a MAP of what the
--   snapshot did), author, commit_message, commit_extra_info.
-- The newest 20:
SELECT snapshot_id, snapshot_time, schema_version, author, commit_message,
       commit_extra_info, changes
FROM lake.snapshots()
ORDER BY snapshot_id DESC
LIMIT 20;

-- Who committed how much (NULL author = commits without a commit message,
-- such as CREATE TABLE or the statements of 02_crud.sql).
SELECT author, count(*) AS snapshots, min(snapshot_id) AS first_id, max(snapshot_id) AS last_id,
       min(snapshot_time) AS first_time, max(snapshot_time) AS last_time
FROM lake.snapshots()
GROUP BY author
ORDER BY first_id;

-- Only the flushes of the sink (its other commits, partition claims and
-- operator resets, carry "kind":"claim" or "kind":"reset"), with the commit message and the JSON extra
-- info it writes.
SELECT snapshot_id, snapshot_time, commit_message, commit_extra_info
FROM lake.snapshots()
WHERE author = 'ducklake-sink' AND commit_extra_info LIKE '%"kind":"flush"%'
ORDER BY snapshot_id DESC
LIMIT 10;

-- -----------------------------------------------------------------------------
-- 2. orders at earlier snapshots (AT VERSION)
-- -----------------------------------------------------------------------------
-- The first and the second-to-last flush of the sink, and the newest snapshot.
-- (If the sink has not flushed yet, all of them fall back to the newest one.)
SET VARIABLE latest_snapshot = (SELECT id::BIGINT FROM lake.current_snapshot());

SET VARIABLE first_flush = (
    SELECT coalesce(min(snapshot_id) FILTER (WHERE author = 'ducklake-sink' AND commit_extra_info LIKE '%"kind":"flush"%'), max(snapshot_id))
    FROM lake.snapshots()
);

SET VARIABLE previous_flush = (
    SELECT coalesce(max(snapshot_id), getvariable('first_flush'))
    FROM (
        SELECT snapshot_id
        FROM lake.snapshots()
        WHERE author = 'ducklake-sink' AND commit_extra_info LIKE '%"kind":"flush"%'
        ORDER BY snapshot_id DESC
        OFFSET 1
    )
);

SELECT getvariable('first_flush')     AS first_flush,
       getvariable('previous_flush')  AS previous_flush,
       getvariable('latest_snapshot') AS latest_snapshot;

-- How many orders there were after the first flush, after the previous flush,
-- and now. AT applies to one table reference, so each count reads its own
-- version of orders.
SELECT 'after first flush' AS as_of, getvariable('first_flush') AS snapshot_id, count(*) AS orders
FROM orders AT (VERSION => getvariable('first_flush'))
UNION ALL
SELECT 'after previous flush', getvariable('previous_flush'), count(*)
FROM orders AT (VERSION => getvariable('previous_flush'))
UNION ALL
SELECT 'now', getvariable('latest_snapshot'), count(*)
FROM orders;

-- Any query works on an old version, for example revenue per status then
-- and now, side by side.
SELECT coalesce(now_.status, then_.status)  AS status,
       then_.revenue                        AS revenue_after_first_flush,
       now_.revenue                         AS revenue_now
FROM (SELECT status, round(sum(quantity * price), 2) AS revenue
      FROM orders AT (VERSION => getvariable('first_flush'))
      GROUP BY status) AS then_
FULL OUTER JOIN
     (SELECT status, round(sum(quantity * price), 2) AS revenue
      FROM orders
      GROUP BY status) AS now_
  ON now_.status IS NOT DISTINCT FROM then_.status
ORDER BY status;

-- -----------------------------------------------------------------------------
-- 3. orders at a point in time (AT TIMESTAMP)
-- -----------------------------------------------------------------------------
-- AT (TIMESTAMP => t) reads the newest snapshot taken at or before t. A time
-- before the first snapshot of the lake is an error (no snapshot found).
SET VARIABLE first_flush_time = (
    SELECT snapshot_time FROM lake.snapshots() WHERE snapshot_id = getvariable('first_flush')
);

-- A moment just before the flush that came after the first one. Reading at
-- that time gives the newest snapshot before it. (While the sink has flushed
-- only once, this falls back to the time of the first flush.)
SET VARIABLE before_second_flush_time = (
    SELECT coalesce(min(snapshot_time) - INTERVAL 1 millisecond, getvariable('first_flush_time'))
    FROM lake.snapshots()
    WHERE author = 'ducklake-sink' AND commit_extra_info LIKE '%"kind":"flush"%'
      AND snapshot_id > getvariable('first_flush')
);

SELECT 'at the first flush' AS as_of, getvariable('first_flush_time') AS point_in_time, count(*) AS orders
FROM orders AT (TIMESTAMP => getvariable('first_flush_time'))
UNION ALL
SELECT 'just before the second flush', getvariable('before_second_flush_time'), count(*)
FROM orders AT (TIMESTAMP => getvariable('before_second_flush_time'))
UNION ALL
SELECT 'now', now(), count(*)
FROM orders;

-- Which snapshot that moment maps to: the newest one taken at or before it.
SELECT snapshot_id, snapshot_time, author, commit_message
FROM lake.snapshots()
WHERE snapshot_time <= getvariable('before_second_flush_time')
ORDER BY snapshot_id DESC
LIMIT 1;

-- Literal points in time work too, as long as the lake already existed then:
--     FROM orders AT (TIMESTAMP => now() - INTERVAL 5 minutes)
--     FROM orders AT (TIMESTAMP => TIMESTAMPTZ '2026-11-26 03:00:00+00')
-- And a whole session can be pinned to the past when attaching:
--     ATTACH 'ducklake:...' AS lake_then (SNAPSHOT_VERSION 42)

-- -----------------------------------------------------------------------------
-- 4. Time travel on a table of our own: undo a mistake
-- -----------------------------------------------------------------------------
-- (Re)create demo_products so that this file also runs on its own.
CREATE OR REPLACE TABLE demo_products (
    product_id INTEGER,
    name       VARCHAR,
    category   VARCHAR,
    price      DECIMAL(10, 2),
    in_stock   BOOLEAN
);

INSERT INTO demo_products VALUES
    (1, 'widget',    'tools',  4.99, true),
    (2, 'gadget',    'tools', 19.99, true),
    (3, 'gizmo',     'toys',   7.50, true),
    (4, 'doohickey', 'toys',   2.25, true),
    (5, 'sprocket',  'parts',  0.99, true);

-- Version 1 of the table: remember its snapshot id and time.
SET VARIABLE products_v1 = (SELECT id::BIGINT FROM lake.current_snapshot());
SET VARIABLE products_v1_time = (
    SELECT snapshot_time FROM lake.snapshots() WHERE snapshot_id = getvariable('products_v1')
);

-- Oops: every price doubled, and the toys deleted.
UPDATE demo_products SET price = price * 2;
DELETE FROM demo_products WHERE category = 'toys';

SET VARIABLE products_v2 = (SELECT id::BIGINT FROM lake.current_snapshot());

-- The table now, and as it was at version 1 (by id and by time).
FROM demo_products ORDER BY product_id;

FROM demo_products AT (VERSION => getvariable('products_v1')) ORDER BY product_id;

FROM demo_products AT (TIMESTAMP => getvariable('products_v1_time')) ORDER BY product_id;

-- What changed between the two versions, row by row. Note the order when a
-- table reference has both: the alias comes first, then AT (...).
SELECT coalesce(v2.product_id, v1.product_id) AS product_id,
       v1.name,
       v1.price AS price_v1,
       v2.price AS price_v2,
       CASE WHEN v2.product_id IS NULL THEN 'deleted'
            WHEN v1.price <> v2.price  THEN 'price changed'
            ELSE 'unchanged' END AS change
FROM demo_products AS v1 AT (VERSION => getvariable('products_v1'))
FULL OUTER JOIN demo_products AS v2 AT (VERSION => getvariable('products_v2'))
  USING (product_id)
ORDER BY product_id;

-- Undo, in one transaction: put the old prices back and re-insert the deleted
-- rows, both read from version 1.
BEGIN TRANSACTION;

UPDATE demo_products AS p
SET price = old.price
FROM (FROM demo_products AT (VERSION => getvariable('products_v1'))) AS old
WHERE p.product_id = old.product_id;

INSERT INTO demo_products
SELECT *
FROM demo_products AT (VERSION => getvariable('products_v1'))
WHERE product_id NOT IN (SELECT product_id FROM demo_products);

CALL lake.set_commit_message('sql-tutorial', 'restore demo_products from its version 1');

COMMIT;

-- Back to the state of version 1 (this query returns no rows when the current
-- table and version 1 hold exactly the same rows).
(FROM demo_products EXCEPT FROM demo_products AT (VERSION => getvariable('products_v1')))
UNION ALL
(FROM demo_products AT (VERSION => getvariable('products_v1')) EXCEPT FROM demo_products);

FROM demo_products ORDER BY product_id;
