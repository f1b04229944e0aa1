// Command pacemakerctl talks to pacemaker servers.
package main

func main() {}
