"""The ResultSet, as pure decisions and pure data handling: which finished Tasks are collected,
what is computed from them (aggregations, CEL transforms) and how they are stored (the segment
format: JSON lines, compressed, encrypted, checksummed). No I/O, no clock reads."""
