-- =============================================================================
-- 04_advanced.sql  --  Schema evolution, change feed, partitioning, maintenance
-- =============================================================================
--
--     ducklake-sink sql CONNECTOR.json sql/04_advanced.sql
--
-- All writes go to demo_* tables. The sink-owned tables (orders,
-- __ducklake_sink_offsets) are only read, and every maintenance call below is
-- either limited to a demo table or a dry run, so a running sink and the
-- history it wrote are left alone. The file can be run any number of times.
-- =============================================================================


-- =============================================================================
-- Part 1. Schema evolution
-- =============================================================================
-- ALTER TABLE on a DuckLake table only writes metadata: no data file is
-- rewritten. Old snapshots keep their old schema, so time travel still shows
-- the columns as they were.
CREATE OR REPLACE TABLE demo_customers (
    customer_id INTEGER,
    name        VARCHAR
);

INSERT INTO demo_customers VALUES (1, 'Ada Lovelace'), (2, 'Alan Turing'), (3, 'Grace Hopper');

SET VARIABLE customers_v1 = (SELECT id::BIGINT FROM lake.current_snapshot());

-- Add columns. Existing rows get the DEFAULT (or NULL when there is none).
ALTER TABLE demo_customers ADD COLUMN email VARCHAR;
ALTER TABLE demo_customers ADD COLUMN loyalty_points INTEGER DEFAULT 0;

-- Rename a column.
ALTER TABLE demo_customers RENAME COLUMN name TO full_name;

-- Type promotion: only widening is allowed (INTEGER -> BIGINT, FLOAT -> DOUBLE,
-- ...). A narrowing change such as VARCHAR -> INTEGER is refused with
-- "only widening type promotions are allowed".
ALTER TABLE demo_customers ALTER COLUMN customer_id SET DATA TYPE BIGINT;

-- Nested types evolve too: add a struct column, then a field inside it.
ALTER TABLE demo_customers ADD COLUMN address STRUCT(city VARCHAR);
ALTER TABLE demo_customers ADD COLUMN address.country VARCHAR;

-- A row that needs the wider type, and values for the new columns.
INSERT INTO demo_customers
VALUES (9000000000, 'Edsger Dijkstra', 'ewd@example.com', 7, {'city': 'Austin', 'country': 'US'});

UPDATE demo_customers
SET email = lower(replace(full_name, ' ', '.')) || '@example.com'
WHERE email IS NULL;

-- Drop a column again.
ALTER TABLE demo_customers DROP COLUMN loyalty_points;

DESCRIBE demo_customers;

FROM demo_customers ORDER BY customer_id;

-- The same table at its first version: two columns, the old name, INTEGER ids.
FROM demo_customers AT (VERSION => getvariable('customers_v1')) ORDER BY customer_id;

DESCRIBE FROM demo_customers AT (VERSION => getvariable('customers_v1'));


-- =============================================================================
-- Part 2. Change feed: what changed between two snapshots
-- =============================================================================
-- lake.table_changes('table', from_snapshot, to_snapshot) returns every row
-- inserted, deleted or updated in the snapshots from .. to (both included),
-- with snapshot_id, rowid and change_type (insert, delete, update_preimage,
-- update_postimage) in front of the columns of the table. The long form is
-- ducklake_table_changes('lake', 'schema', 'table', from, to). Instead of
-- snapshot ids, both forms also take timestamps.
CREATE OR REPLACE TABLE demo_stock (
    sku      VARCHAR,
    quantity INTEGER
);

-- The snapshot just after the CREATE: the changes start after it.
SET VARIABLE stock_from = (SELECT id::BIGINT + 1 FROM lake.current_snapshot());

INSERT INTO demo_stock VALUES ('widget', 10), ('gadget', 5), ('gizmo', 0);
UPDATE demo_stock SET quantity = quantity + 20 WHERE sku = 'gadget';
DELETE FROM demo_stock WHERE quantity = 0;

SET VARIABLE stock_to = (SELECT id::BIGINT FROM lake.current_snapshot());

FROM lake.table_changes('demo_stock', getvariable('stock_from'), getvariable('stock_to'))
ORDER BY snapshot_id, rowid, change_type;

-- The same on orders (read only): what did the newest flushes of the sink add?
-- Rows per flush, joined with the commit messages, for the last 5 flushes.
SET VARIABLE last_flush = (
    SELECT coalesce(max(snapshot_id) FILTER (WHERE author = 'ducklake-sink' AND commit_extra_info LIKE '%"kind":"flush"%'), max(snapshot_id))
    FROM lake.snapshots()
);

SET VARIABLE fifth_last_flush = (
    SELECT coalesce(min(snapshot_id), getvariable('last_flush'))
    FROM (
        SELECT snapshot_id
        FROM lake.snapshots()
        WHERE author = 'ducklake-sink' AND commit_extra_info LIKE '%"kind":"flush"%'
        ORDER BY snapshot_id DESC
        LIMIT 5
    )
);

SELECT c.snapshot_id, s.commit_message, c.change_type,
       count(*) AS row_count, min(c.order_id) AS min_order_id, max(c.order_id) AS max_order_id
FROM lake.table_changes('orders', getvariable('fifth_last_flush'), getvariable('last_flush')) AS c
JOIN lake.snapshots() AS s USING (snapshot_id)
GROUP BY ALL
ORDER BY c.snapshot_id, c.change_type;


-- =============================================================================
-- Part 3. Partitioning
-- =============================================================================
-- A partitioned table writes its Parquet files into hive-style folders
-- (status=paid/, year=2026/month=11/, ...), one file per partition value,
-- and queries that filter on the partition columns skip the other files.
-- Partition keys are columns or year/month/day/hour of a date or timestamp.
-- The layout applies to data written AFTER the ALTER: changing it later
-- leaves the existing files as they are.

-- An empty copy of the orders columns plus a real timestamp column.
CREATE OR REPLACE TABLE demo_orders_partitioned AS
SELECT *, try_cast("timestamp" AS TIMESTAMP) AS order_ts
FROM orders
LIMIT 0;

ALTER TABLE demo_orders_partitioned SET PARTITIONED BY (status);

INSERT INTO demo_orders_partitioned
SELECT *, try_cast("timestamp" AS TIMESTAMP)
FROM orders
ORDER BY order_id
LIMIT 5000;

-- Partition evolution: from now on by day of the order, then status.
ALTER TABLE demo_orders_partitioned
    SET PARTITIONED BY (year(order_ts), month(order_ts), day(order_ts), status);

INSERT INTO demo_orders_partitioned
SELECT *, try_cast("timestamp" AS TIMESTAMP)
FROM orders
ORDER BY order_id DESC
LIMIT 5000;

-- The files and the folders they went to (small inserts may still be inlined
-- in the catalog and then have no file yet).
SELECT regexp_replace(data_file, '^.*/demo_orders_partitioned/|[^/]*$', '', 'g') AS partition_folder,
       count(*)                                                                 AS files,
       sum(data_file_size_bytes)                                                AS bytes
FROM ducklake_list_files('lake', 'demo_orders_partitioned')
GROUP BY partition_folder
ORDER BY partition_folder;

-- Filtering on a partition column only opens the matching files.
SELECT status, count(*) AS orders, round(sum(quantity * price), 2) AS revenue
FROM demo_orders_partitioned
WHERE status = 'paid'
GROUP BY status;

-- Stop partitioning new data:
--     ALTER TABLE demo_orders_partitioned RESET PARTITIONED BY

-- Options can be stored per table (or per schema, or for the whole lake when
-- table_name is left out). Here: zstd for the Parquet files of this table.
CALL lake.set_option('parquet_compression', 'zstd', table_name => 'demo_orders_partitioned');

FROM lake.options() WHERE scope <> 'GLOBAL' ORDER BY scope_entry, option_name;


-- =============================================================================
-- Part 4. Maintenance
-- =============================================================================
-- A lake that is written in many small commits (like a streaming sink) ends up
-- with many small files, inlined rows and a long history. The maintenance
-- functions below tidy that up. Called with the lake name only, they act on
-- the whole lake, for example
--     CALL ducklake_flush_inlined_data('lake')
--     CALL ducklake_merge_adjacent_files('lake')
-- and the statement
--     CHECKPOINT lake
-- runs all of them in turn (flush, expire, merge, rewrite, cleanup) for the
-- whole lake, driven by lake options such as expire_older_than.
-- Here they are limited to demo tables, or run as a dry run, so that the
-- tables of the sink are not touched.

-- 4a. Data inlining. Inserts of at most data_inlining_row_limit rows (default
-- 10) are stored inside the catalog instead of as tiny Parquet files. Give this
-- demo table a limit of 1000 so that its small inserts are inlined whatever the
-- lake-wide setting is.
CREATE OR REPLACE TABLE demo_inlined (id INTEGER, note VARCHAR);

CALL lake.set_option('data_inlining_row_limit', 1000, table_name => 'demo_inlined');

INSERT INTO demo_inlined SELECT i, 'batch 1' FROM range(0, 50) AS t(i);
INSERT INTO demo_inlined SELECT i, 'batch 2' FROM range(50, 100) AS t(i);
INSERT INTO demo_inlined SELECT i, 'batch 3' FROM range(100, 150) AS t(i);

-- 150 rows, but no data file yet: they are all in the catalog.
SELECT (SELECT count(*) FROM demo_inlined) AS row_count, file_count
FROM lake.table_info()
WHERE table_name = 'demo_inlined';

-- Write the inlined rows out to Parquet. Returns schema_name, table_name,
-- rows_flushed.
CALL ducklake_flush_inlined_data('lake', table_name => 'demo_inlined');

SELECT (SELECT count(*) FROM demo_inlined) AS row_count, file_count
FROM lake.table_info()
WHERE table_name = 'demo_inlined';

-- 4b. Compaction. Turn inlining off for this demo table so that every small
-- insert writes its own small Parquet file, then merge them.
CREATE OR REPLACE TABLE demo_small_files (id INTEGER, batch INTEGER);

CALL lake.set_option('data_inlining_row_limit', 0, table_name => 'demo_small_files');

INSERT INTO demo_small_files SELECT i, 1 FROM range(0, 20) AS t(i);
INSERT INTO demo_small_files SELECT i, 2 FROM range(20, 40) AS t(i);

SET VARIABLE small_files_two_inserts = (SELECT id::BIGINT FROM lake.current_snapshot());

INSERT INTO demo_small_files SELECT i, 3 FROM range(40, 60) AS t(i);
INSERT INTO demo_small_files SELECT i, 4 FROM range(60, 80) AS t(i);

SELECT table_name, file_count, file_size_bytes
FROM lake.table_info()
WHERE table_name = 'demo_small_files';

-- Merge adjacent small files of one table. Returns schema_name, table_name,
-- files_processed, files_created. Optional named arguments: schema,
-- max_compacted_files, min_file_size, max_file_size.
CALL ducklake_merge_adjacent_files('lake', 'demo_small_files');

SELECT table_name, file_count, file_size_bytes
FROM lake.table_info()
WHERE table_name = 'demo_small_files';

-- Time travel still works across the merge: the merged file remembers which
-- snapshot wrote each row.
SELECT (SELECT count(*) FROM demo_small_files AT (VERSION => getvariable('small_files_two_inserts'))) AS rows_after_two_inserts,
       (SELECT count(*) FROM demo_small_files) AS rows_now;

-- 4c. Rewriting files with many deleted rows. Deletes only add delete files,
-- ducklake_rewrite_data_files rewrites the data files of a table in which more
-- than delete_threshold (a fraction, default 0.95, lake option
-- rewrite_delete_threshold) of the rows are deleted.
DELETE FROM demo_small_files WHERE id % 4 <> 0;

SELECT table_name, file_count, delete_file_count
FROM lake.table_info()
WHERE table_name = 'demo_small_files';

CALL ducklake_rewrite_data_files('lake', 'demo_small_files', delete_threshold => 0.5);

SELECT table_name, file_count, delete_file_count
FROM lake.table_info()
WHERE table_name = 'demo_small_files';

-- 4d. Expiring snapshots. Time travel needs old snapshots and the files they
-- point to, so nothing is freed until snapshots are expired. Expiring is for
-- the whole lake and it would shorten the history of orders as well, so here
-- it is only a DRY RUN: it lists the snapshots that WOULD be expired.
-- Snapshots older than a week:
CALL ducklake_expire_snapshots('lake', dry_run => true, older_than => now() - INTERVAL 7 days);

-- Or pick snapshots by id (here: the one after the second small insert):
CALL ducklake_expire_snapshots('lake', dry_run => true,
                               versions => [getvariable('small_files_two_inserts')]);

-- How many snapshots there are, and how many a 7-day expiry would remove.
SELECT (SELECT count(*) FROM lake.snapshots()) AS snapshots,
       (SELECT count(*) FROM ducklake_expire_snapshots('lake', dry_run => true,
                                                       older_than => now() - INTERVAL 7 days)) AS older_than_7_days;

-- 4e. Deleting files nobody needs any more. Files replaced by a merge or a
-- rewrite, or only used by expired snapshots, are scheduled for deletion,
-- ducklake_cleanup_old_files removes them from storage (all of them with
-- cleanup_all => true, or those scheduled before older_than). Dry run: list
-- them only.
CALL ducklake_cleanup_old_files('lake', dry_run => true, cleanup_all => true);

-- Files under DATA_PATH that the catalog does not know at all (left over by
-- a crashed writer, for example). Dry run as well.
CALL ducklake_delete_orphaned_files('lake', dry_run => true, cleanup_all => true);

-- The state of every table after all this.
SELECT table_name, file_count, file_size_bytes, delete_file_count
FROM lake.table_info()
ORDER BY table_name;
