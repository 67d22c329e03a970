//! Write-ahead log: record format, segment files, reading.
