// Package bench is the load generator behind `pacemakerctl bench`: it
// simulates a Storm cluster's heartbeat traffic — workers writing real
// ClusterWorkerHeartbeats on their own unauthenticated connections, a
// Nimbus listing and reading them authenticated — or a plain key/value
// write load, against pacemaker, redis-server (RESP SET) or ZooKeeper
// (setData, spoken in ZooKeeper's own wire protocol), and measures it.
//
// Sends are paced open loop: every request has a scheduled time and its
// latency counts from that time, so a stalled server is charged for the
// requests it delayed (no coordinated omission). Latencies go into
// log-linear (HDR-style) histograms; the server's CPU time and RSS are read
// from /proc for its pid, so results can be given per server CPU-second.
package bench
