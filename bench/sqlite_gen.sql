-- Builds the database of the sqlite3 workload of scripts/bench (run once,
-- untimed).  Deterministic: "random" columns come from integer hashes of the
-- row number.
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA page_size = 4096;
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, city TEXT, score INTEGER);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 50000)
INSERT INTO customers
  SELECT i, 'cust-' || printf('%07d', (i * 7919) % 1000003), 'city' || ((i * 31) % 97),
         (i * 2654435761) % 1000
  FROM c;
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, amount INTEGER, day INTEGER,
                    note TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000)
INSERT INTO orders
  SELECT i, 1 + (i * 48271) % 50000, (i * 16807) % 100000, (i * 69621) % 3650,
         substr('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor',
                1 + (i * 7) % 40, 8 + (i * 13) % 30)
  FROM c;
CREATE INDEX orders_customer ON orders(customer);
