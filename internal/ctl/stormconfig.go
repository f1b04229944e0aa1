package ctl

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// stormConfig is what pacemakerctl takes from a storm.yaml.
type stormConfig struct {
	Servers    []string // host:port
	AuthMethod string
	JAAS       string
	MaxFrame   int // pacemaker.thrift.message.size.max; 0 = not set
}

func loadStormConfig(path string) (*stormConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read storm config: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse storm config %s: %w", path, err)
	}
	sc := &stormConfig{}
	port := 6699
	if v, ok := raw["pacemaker.port"]; ok {
		p, ok := v.(int)
		if !ok || p < 1 || p > 65535 {
			return nil, fmt.Errorf("storm config %s: pacemaker.port: invalid value %v", path, v)
		}
		port = p
	}
	var hosts []string
	switch v := raw["pacemaker.servers"].(type) {
	case []any:
		for _, h := range v {
			s, ok := h.(string)
			if !ok {
				return nil, fmt.Errorf("storm config %s: pacemaker.servers: %v is not a host name", path, h)
			}
			hosts = append(hosts, s)
		}
	case nil:
	default:
		return nil, fmt.Errorf("storm config %s: pacemaker.servers: want a list of hosts", path)
	}
	if h, ok := raw["pacemaker.host"].(string); ok && len(hosts) == 0 {
		hosts = []string{h} // the deprecated single-server form
	}
	for _, h := range hosts {
		if _, _, err := net.SplitHostPort(h); err == nil {
			sc.Servers = append(sc.Servers, h)
		} else {
			sc.Servers = append(sc.Servers, net.JoinHostPort(h, strconv.Itoa(port)))
		}
	}
	if v, ok := raw["pacemaker.thrift.message.size.max"]; ok {
		n, ok := v.(int)
		if !ok || n < 1 {
			return nil, fmt.Errorf("storm config %s: pacemaker.thrift.message.size.max: invalid value %v", path, v)
		}
		sc.MaxFrame = n
	}
	if m, ok := raw["pacemaker.auth.method"].(string); ok {
		sc.AuthMethod = m
	}
	if j, ok := raw["java.security.auth.login.config"].(string); ok {
		sc.JAAS = j
	}
	return sc, nil
}
