/*
 * Example configuration for Etsy StatsD (https://github.com/statsd/statsd) in
 * front of Graphite, matching ops/grafana-dashboard.json.
 *
 *   node stats.js ops/statsd-config.js
 *
 * tradeagg processes: STATSD_HOST=<this host> STATSD_PORT=8125 STATSD_PREFIX=tradeagg
 * Every process already sums its counters and flushes every
 * TRADEAGG_METRICS_INTERVAL seconds (default 10), so StatsD receives a few
 * packets per process per interval, not one per trade.
 */
{
  port: 8125,
  address: "0.0.0.0",
  backends: ["./backends/graphite"],
  graphiteHost: "127.0.0.1",
  graphitePort: 2003,

  // Flush to Graphite at the same period as the processes flush to StatsD,
  // and make it match the finest Graphite retention (10s below).
  flushInterval: 10000,

  graphite: {
    // Paths: stats.counters.<name>.rate|count, stats.timers.<name>.mean|upper_90|...,
    // stats.gauges.<name>: what the dashboard queries.
    legacyNamespace: false,
    globalPrefix: "stats",
    prefixCounter: "counters",
    prefixTimer: "timers",
    prefixGauge: "gauges"
  },

  // A stopped process sends nothing: report zero rates rather than gaps,
  // but keep gauges (backlog, active tokens) at their last value.
  deleteIdleStats: false,
  deleteCounters: false,
  deleteTimers: true,
  deleteGauges: false,

  percentThreshold: [50, 90, 99],

  // Timers arrive sampled above 200 per name per interval, tagged |@rate:
  // StatsD scales count and count_ps by it.
  dumpMessages: false
}

/*
 * Graphite storage-schemas.conf entry to go with it:
 *
 *   [stats]
 *   pattern = ^stats\.
 *   retentions = 10s:6h,1m:7d,10m:1y
 *
 * and storage-aggregation.conf, so counts add up and gauges do not:
 *
 *   [count]
 *   pattern = \.count$
 *   xFilesFactor = 0
 *   aggregationMethod = sum
 *
 *   [upper]
 *   pattern = \.upper(_\d+)?$
 *   xFilesFactor = 0.1
 *   aggregationMethod = max
 */
