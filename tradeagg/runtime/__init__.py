"""Long-running parts: supervision, retry policy, the Kafka bridge, shard consumers, janitor, reclaim."""
