"""Redis: every key, the connection, the record store and its scripts, retention."""
