// Command pacemaker is the heartbeat server.
package main

func main() {}
