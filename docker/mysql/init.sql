-- Source database for the CDC demo (docker/compose.cdc.yml); runs once, on an empty data dir.
CREATE DATABASE IF NOT EXISTS inventory;
USE inventory;

CREATE TABLE users (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(255),
  email VARCHAR(255),
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

INSERT INTO users (name, email) VALUES
  ('Alice Martin', 'alice@example.com'),
  ('Bob Chen', 'bob@example.com'),
  ('Carla Rossi', 'carla@example.com'),
  ('Dev Patel', 'dev@example.com'),
  ('Eve Dubois', 'eve@example.com');

-- The Debezium connector's account (connector-config/debezium-mysql-source.json).
CREATE USER 'debezium'@'%' IDENTIFIED WITH mysql_native_password BY 'dbz';
GRANT SELECT, RELOAD, SHOW DATABASES, LOCK TABLES, REPLICATION SLAVE, REPLICATION CLIENT
  ON *.* TO 'debezium'@'%';
FLUSH PRIVILEGES;
