// Reference definition of the worker heartbeat Storm stores in Pacemaker,
// written from the team's notes on storm.thrift (field ids and wire types
// are what matter; names are ours). It exists only so the tests can compare
// internal/stormhb's hand-written decoder and encoder with code Apache
// Thrift's compiler generates.

namespace go thriftref

struct GlobalStreamId {
  1: required string componentId;
  2: required string streamId;
}

struct BoltStats {
  1: required map<string, map<GlobalStreamId, i64>> acked;
  2: required map<string, map<GlobalStreamId, i64>> failed;
  3: required map<string, map<GlobalStreamId, double>> process_ms_avg;
  4: required map<string, map<GlobalStreamId, i64>> executed;
  5: required map<string, map<GlobalStreamId, double>> execute_ms_avg;
}

struct SpoutStats {
  1: required map<string, map<string, i64>> acked;
  2: required map<string, map<string, i64>> failed;
  3: required map<string, map<string, double>> complete_ms_avg;
}

union ExecutorSpecificStats {
  1: BoltStats bolt;
  2: SpoutStats spout;
}

struct ExecutorStats {
  1: required map<string, map<string, i64>> emitted;
  2: required map<string, map<string, i64>> transferred;
  3: required ExecutorSpecificStats specific;
  4: required double rate;
}

struct ExecutorInfo {
  1: required i32 task_start;
  2: required i32 task_end;
}

// Storm 3.x: time_secs widened to i64.
struct ClusterWorkerHeartbeat {
  1: required string storm_id;
  2: required map<ExecutorInfo, ExecutorStats> executor_stats;
  3: required i64 time_secs;
  4: required i32 uptime_secs;
}

// Storm 2.x: the same struct with time_secs an i32.
struct ClusterWorkerHeartbeatV2 {
  1: required string storm_id;
  2: required map<ExecutorInfo, ExecutorStats> executor_stats;
  3: required i32 time_secs;
  4: required i32 uptime_secs;
}
