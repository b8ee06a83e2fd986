"""Redis: the connection, the Lua script registry and the shard streams."""
