package ctl

// NewerHeartbeat picks the newer of two heartbeats the way Nimbus does, by
// the ClusterWorkerHeartbeat's time_secs; nil until that decoder exists, so
// the first copy found wins.
var NewerHeartbeat func(a, b []byte) bool
