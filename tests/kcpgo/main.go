// kcpgo - a test peer for websocksy's KCP transport, built on kcp-go
// (Debian's golang-github-xtaci-kcp-dev) without FEC or crypt, so its
// datagrams are plain KCP segments (docs/KCP-MUX.md §6).
//
//	kcpgo echo-server ADDR        listen, echo every session's bytes back;
//	                              prints "listening HOST:PORT" first
//	kcpgo client ADDR SIZE [SEED] send SIZE pseudo-random bytes, read the
//	                              echo, compare; prints "ok SIZE conv ..."
//	kcpgo client ADDR -           the same with stdin as the data
//
// Settings match websocksy's defaults: stream mode, nodelay 1, interval
// 10 ms, fast resend 2, no congestion window, windows 1024, MTU 1400.
package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strconv"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

const timeout = 60 * time.Second

func tune(s *kcp.UDPSession) {
	s.SetStreamMode(true)
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetMtu(1400)
	s.SetReadBuffer(4 << 20)
	s.SetWriteBuffer(4 << 20)
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "kcpgo: "+format+"\n", a...)
	os.Exit(1)
}

func echoServer(addr string) {
	l, err := kcp.ListenWithOptions(addr, nil, 0, 0)
	if err != nil {
		die("listen %s: %v", addr, err)
	}
	fmt.Printf("listening %s\n", l.Addr())
	os.Stdout.Sync()
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			die("accept: %v", err)
		}
		tune(s)
		go func(s *kcp.UDPSession) {
			defer s.Close()
			n, _ := io.Copy(s, s)
			fmt.Printf("session %08x echoed %d\n", s.GetConv(), n)
			os.Stdout.Sync()
		}(s)
	}
}

func payload(arg string, seed int64) []byte {
	if arg == "-" {
		d, err := io.ReadAll(os.Stdin)
		if err != nil {
			die("stdin: %v", err)
		}
		return d
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n <= 0 {
		die("bad size %q", arg)
	}
	d := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(d)
	return d
}

func client(addr string, data []byte) {
	s, err := kcp.DialWithOptions(addr, nil, 0, 0)
	if err != nil {
		die("dial %s: %v", addr, err)
	}
	defer s.Close()
	tune(s)
	s.SetDeadline(time.Now().Add(timeout))
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		werr <- err
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(s, got); err != nil {
		die("read after %v: %v", time.Since(start), err)
	}
	if err := <-werr; err != nil {
		die("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		i := 0
		for i < len(data) && got[i] == data[i] {
			i++
		}
		die("echo differs at byte %d of %d", i, len(data))
	}
	fmt.Printf("ok %d conv %08x %.3fs\n", len(data), s.GetConv(),
		time.Since(start).Seconds())
}

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "echo-server" {
		echoServer(os.Args[2])
		return
	}
	if len(os.Args) >= 4 && os.Args[1] == "client" {
		seed := int64(1)
		if len(os.Args) >= 5 {
			v, err := strconv.ParseInt(os.Args[4], 10, 64)
			if err != nil {
				die("bad seed %q", os.Args[4])
			}
			seed = v
		}
		client(os.Args[2], payload(os.Args[3], seed))
		return
	}
	fmt.Fprintf(os.Stderr, "usage: kcpgo echo-server ADDR | "+
		"kcpgo client ADDR SIZE|- [SEED]\n")
	os.Exit(2)
}
