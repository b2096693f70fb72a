package main

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

func notsentLowatOf(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// A connection from this machine leaves the server's socket holding at most
// notsentLowat bytes unsent.
func TestConnContextBoundsUnsentOnSameHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if v := notsentLowatOf(t, server); v == notsentLowat {
		t.Fatalf("TCP_NOTSENT_LOWAT is %d before connContext: the test cannot tell", v)
	}
	ctx := context.Background()
	if got := connContext(ctx, server); got != ctx {
		t.Error("connContext changed the context")
	}
	if v := notsentLowatOf(t, server); v != notsentLowat {
		t.Errorf("TCP_NOTSENT_LOWAT = %d, want %d", v, notsentLowat)
	}

	// Under --tls-cert the server hands ConnContext a *tls.Conn: the option
	// goes on the TCP connection beneath it.
	raw, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 1<<20) })
	connContext(ctx, tls.Server(server, &tls.Config{}))
	if v := notsentLowatOf(t, server); v != notsentLowat {
		t.Errorf("through TLS: TCP_NOTSENT_LOWAT = %d, want %d", v, notsentLowat)
	}
}
