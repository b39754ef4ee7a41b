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
	c, p := g.clientIP(r)
	if !c.IsValid() {
		return peer, peer
	}
	if p.IsValid() {
		peer = p.String()
	}
	return c.String(), peer
}

// clientIP is clientAddr as addresses: what source allowlists and rate
// limits go by. An invalid client is a connection whose peer is not an IP
// address (a test's, or a Unix socket's).
func (g *Gateway) clientIP(r *http.Request) (client, peer netip.Addr) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(r.RemoteAddr)
		if err != nil {
			return netip.Addr{}, netip.Addr{}
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	peer = ap.Addr().Unmap()
	if len(g.cfg.TrustedProxies) == 0 || !g.trusted(peer) {
		return peer, peer
	}
	client = peer
	hdr := r.Header.Values("X-Forwarded-For")
	for h := len(hdr) - 1; h >= 0; h-- {
		hops := hdr[h]
		for hops != "" {
			i := strings.LastIndexByte(hops, ',')
			hop := strings.TrimSpace(hops[i+1:])
			hops = hops[:max(i, 0)]
			a, err := netip.ParseAddr(hop)
			if err != nil {
				return client, peer // not an address: nothing left of it can be trusted
			}
			client = a.Unmap()
			if !g.trusted(client) {
				return client, peer
			}
			if i < 0 {
				break
			}
		}
	}
	return client, peer
}

func (g *Gateway) trusted(a netip.Addr) bool {
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
