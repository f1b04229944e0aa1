package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// idle opens -conns connections (from 127.0.0.2 and up, so no source runs
// out of ports), sends one SEND_PULSE of -value bytes on each (all to one
// key, so the store does not grow), reads its answer, and then keeps the
// connection open and idle; it reports the server's RSS before and after.
func idle(args []string) int {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:7000", "server")
	conns := fs.Int("conns", 1000, "connections")
	value := fs.Int("value", 4096, "value bytes")
	pid := fs.Int("pid", 0, "server pid, for its RSS")
	settle := fs.Duration("settle", 5*time.Second, "wait before reading RSS")
	hold := fs.Duration("hold", 0, "keep the connections open this long after the report")
	resp := fs.Bool("redis", false, "speak RESP (SET) to a redis-server instead")
	_ = fs.Parse(args)

	req := wire.AppendFrame(nil, &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
		Pulse: wire.Pulse{ID: "/bench/idle", Details: bytes.Repeat([]byte{7}, *value)}, ID: 1, HasID: true})
	request := request
	if *resp {
		req = fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$11\r\n/bench/idle\r\n$%d\r\n%s\r\n", *value, bytes.Repeat([]byte{7}, *value))
		request = requestRESP
	}
	// One request first, so the key exists before the baseline.
	if nc, err := net.Dial("tcp", *addr); err == nil {
		_ = request(nc, req)
		nc.Close()
	}
	time.Sleep(*settle)
	rss0 := rssKiB(*pid)

	open := make([]net.Conn, *conns)
	var failed atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *conns {
					return
				}
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}, Timeout: 10 * time.Second}
				nc, err := d.Dial("tcp", *addr)
				if err == nil {
					err = request(nc, req)
				}
				if err != nil {
					if failed.Add(1) <= 3 {
						fmt.Fprintln(os.Stderr, "conn", i, err)
					}
					continue
				}
				open[i] = nc
			}
		}()
	}
	wg.Wait()
	opened := int64(*conns) - failed.Load()
	took := time.Since(start)
	time.Sleep(*settle)
	rss1 := rssKiB(*pid)
	fmt.Printf("conns %d failed %d (opened in %.1fs) rss_before_kib %d rss_after_kib %d per_conn_bytes %.0f\n",
		opened, failed.Load(), took.Seconds(), rss0, rss1, float64(rss1-rss0)*1024/float64(max(opened, 1)))
	time.Sleep(*hold)
	for _, nc := range open {
		if nc != nil {
			nc.Close()
		}
	}
	return 0
}

func request(nc net.Conn, req []byte) error {
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := nc.Write(req); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint32(hdr[:])))
	_ = nc.SetDeadline(time.Time{})
	return err
}

// requestRESP sends req and reads redis's "+OK\r\n".
func requestRESP(nc net.Conn, req []byte) error {
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := nc.Write(req); err != nil {
		return err
	}
	var ok [5]byte
	if _, err := io.ReadFull(nc, ok[:]); err != nil {
		return err
	}
	if string(ok[:]) != "+OK\r\n" {
		return fmt.Errorf("redis answered %q", ok[:])
	}
	_ = nc.SetDeadline(time.Time{})
	return nil
}

func rssKiB(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return 0
}
