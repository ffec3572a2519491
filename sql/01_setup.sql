-- =============================================================================
-- 01_setup.sql  --  What is attached, how the lake is configured, what is in it
-- =============================================================================
--
-- Run it with:
--
--     ducklake-sink sql CONNECTOR.json sql/01_setup.sql
--
-- Before the first statement of this file runs, `ducklake-sink sql` has already
-- done the equivalent of
--
--     LOAD ducklake
--     ATTACH 'ducklake:<catalog from CONNECTOR.json>' AS lake (DATA_PATH '<data path>')
--     USE lake
--     USE lake.<schema of the connector>          (main in the demo)
--
-- so in every file of this walk-through:
--   * unqualified table names (orders, demo_products, ...) live in the schema of
--     the connector,
--   * the lake itself is called `lake`: its functions are reached as
--     lake.snapshots(), lake.options(), ... or as ducklake_xxx('lake', ...).
--
-- The files only READ the tables that the sink owns (orders and
-- __ducklake_sink_offsets). Everything they write goes to demo_* tables, and
-- every file can be run again and again on the same lake.
--
-- -----------------------------------------------------------------------------
-- How a DuckLake is attached
-- -----------------------------------------------------------------------------
-- A DuckLake has two parts:
--   * the CATALOG: a small SQL database holding only metadata (schemas, tables,
--     snapshots, the list of data files, small inlined inserts),
--   * the DATA_PATH: a folder or object-store prefix holding the table data as
--     Parquet files.
-- The catalog can be one of three kinds of database:
--
--   DuckDB file (simplest, but ONE process at a time: the file is locked by the
--   process that attached it, so `ducklake-sink sql` cannot attach it while the
--   sink itself is running on it):
--
--     ATTACH 'ducklake:/var/lib/lake/catalog.ducklake' AS lake
--         (DATA_PATH '/var/lib/lake/data/')
--
--   SQLite file (several processes on one machine can attach it together, for
--   example the sink and this tutorial):
--
--     INSTALL sqlite
--     ATTACH 'ducklake:sqlite:/var/lib/lake/catalog.sqlite' AS lake
--         (DATA_PATH '/var/lib/lake/data/')
--
--   PostgreSQL (many readers and writers on many machines, data usually on S3):
--
--     INSTALL postgres
--     ATTACH 'ducklake:postgres:dbname=lake host=db.internal user=duck password=secret' AS lake
--         (DATA_PATH 's3://my-bucket/lake/')
--
-- Useful ATTACH options:
--   DATA_PATH '...'            where new Parquet files go. It is stored in the
--                              catalog when the lake is created, later ATTACHes
--                              may leave it out. Giving a different one later is
--                              an error unless OVERRIDE_DATA_PATH true is added.
--   DATA_INLINING_ROW_LIMIT n  inserts of at most n rows are kept inside the
--                              catalog instead of as a tiny Parquet file
--                              (default 10, 0 turns inlining off). This option
--                              only holds for this connection. To store it in
--                              the lake for every client, run
--                              CALL lake.set_option('data_inlining_row_limit', n)
--   READ_ONLY                  attach without the right to write.
--   SNAPSHOT_VERSION n         attach the whole lake as it was at snapshot n
--   SNAPSHOT_TIME '...'        ... or at a point in time (see 03_time_travel.sql).
--   METADATA_SCHEMA 'name'     keep the metadata tables in that schema of the
--                              catalog database (handy for a shared PostgreSQL).
--   ENCRYPTED                  encrypt the Parquet files, keys kept in the catalog.
--   BUSY_TIMEOUT ms            how long to wait for a locked catalog.
-- =============================================================================


-- 1. Which databases are attached to this session?
--    `lake` is the DuckLake (type ducklake, path = its catalog database). The
--    options column shows the ATTACH options in force, for example data_path
--    and data_inlining_row_limit when they were given.
SELECT database_name, type, path, readonly, internal, options
FROM duckdb_databases()
ORDER BY internal, database_name;

-- 2. Where do unqualified names resolve? (set by USE lake / USE lake.<schema>)
SELECT current_database() AS current_catalog, current_schema() AS current_schema;

-- 3. Facts about this lake: which kind of catalog database, which version of
--    the ducklake extension, and the data path.
FROM lake.settings();

-- 4. Options stored IN the lake (they hold for every client that attaches it).
--    scope GLOBAL applies to the whole lake, SCHEMA or TABLE to one schema or
--    table (scope_entry says which). Same as FROM ducklake_options('lake').
FROM lake.options();

-- 5. Settings of the ducklake extension in this DuckDB session: the default
--    inlining limit, retries when two writers commit at the same time, ...
SELECT name, value, description
FROM duckdb_settings()
WHERE name LIKE 'ducklake%'
ORDER BY name;

-- 6. Every commit makes a new snapshot. This is the newest one.
FROM lake.current_snapshot();

-- 7. The schemas and tables in the lake.
SELECT schema_name
FROM duckdb_schemas()
WHERE database_name = 'lake'
ORDER BY schema_name;

SHOW TABLES;

SELECT schema_name, table_name, estimated_size AS approx_rows, column_count
FROM duckdb_tables()
WHERE database_name = 'lake'
ORDER BY schema_name, table_name;

-- 8. Per table: how many Parquet data files and delete files it has right now,
--    and their size. Rows that are still inlined in the catalog are not in files
--    (see the maintenance part of 04_advanced.sql).
SELECT table_name, file_count, file_size_bytes, delete_file_count, delete_file_size_bytes
FROM lake.table_info()
ORDER BY table_name;

-- 9. The table the sink writes. Note "timestamp": it is a reserved word, so it
--    is always written in double quotes, and it holds an ISO-8601 string.
DESCRIBE orders;

-- 10. How much is in it.
SELECT count(*)                    AS order_rows,
       count(DISTINCT customer_id) AS customers,
       min(order_id)               AS first_order_id,
       max(order_id)               AS last_order_id,
       min("timestamp")            AS first_timestamp,
       max("timestamp")            AS last_timestamp
FROM orders;

-- 11. A few of the newest rows.
FROM orders
ORDER BY order_id DESC
LIMIT 5;

-- 12. The sink bookkeeping table (read it, never write it): for every topic
--     partition, the next Kafka offset to consume. Each flush appends a row in
--     the same transaction as its data, which is what makes the sink
--     exactly-once; a partition's state is its row with the highest next_offset
--     (upkeep folds the older rows away).
FROM __ducklake_sink_offsets
ORDER BY connector, topic, "partition", updated_at DESC
LIMIT 20;

-- 13. The Parquet files behind orders (first 10), straight from the catalog.
SELECT data_file, data_file_size_bytes, delete_file
FROM ducklake_list_files('lake', 'orders')
ORDER BY data_file
LIMIT 10;
