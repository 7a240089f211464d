-- Reverses 0002_log_lines.
DROP TABLE IF EXISTS log_lines;
