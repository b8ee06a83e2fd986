"""tradeagg: exact sliding-window trade aggregates in Redis."""

__version__ = "0.1.0"
