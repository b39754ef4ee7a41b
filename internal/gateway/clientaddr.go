package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr returns the caller's address and the connection's peer, for
// logs. Behind a trusted proxy (a load balancer in Config.TrustedProxies)
// the caller is the right-most X-Forwarded-For entry that is not itself a
// trusted proxy: entries to its left were written by the client and prove
// nothing. With no trusted proxy configured the header is ignored.
func (g *Gateway) clientAddr(r *http.Request) (client, peer string) {
	peer = r.RemoteAddr
	if h, _, err := net.SplitHostPort(peer); err == nil {
		peer = h
	}
	if len(g.cfg.TrustedProxies) == 0 || !g.trusted(peer) {
		return peer, peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client = peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // not an address: nothing left of it can be trusted
		}
		client = a.Unmap().String()
		if !g.trusted(client) {
			break
		}
	}
	return client, peer
}

func (g *Gateway) trusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
