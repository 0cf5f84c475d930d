"""The `rasp` command line (imports both `rasp` and `compiler`; neither imports it)."""
