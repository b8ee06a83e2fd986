"""The external contract in code: the trade, its stream and list encodings, validation, key names."""
