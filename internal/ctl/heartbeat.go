package ctl

import "github.com/storm-pacemaker/pacemaker/internal/stormhb"

// NewerHeartbeat picks the newer of two heartbeats the way Nimbus does, by
// the ClusterWorkerHeartbeat's time_secs (any of Storm's compressions); a
// copy that does not decode never wins, and when neither decodes the first
// copy found wins.
var NewerHeartbeat = stormhb.Newer
