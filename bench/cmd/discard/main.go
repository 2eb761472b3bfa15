// Command discard is an HTTP receiver that reads and discards every
// request body and answers 200 (204 for remote write's path), for
// measuring what a push output costs the agent without a server's own
// ingestion time (bench/outputs.sh). It prints "discard listening on URL"
// and, at SIGTERM, the requests and bytes it received.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	var reqs, bytes atomic.Int64
	bufs := sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Large reads: io.Discard's 8 KiB ones cost this receiver (which
		// shares the machine with the agent) more than the agent's writes.
		buf := bufs.Get().(*[]byte)
		var n int64
		for {
			k, err := r.Body.Read(*buf)
			n += int64(k)
			if err != nil {
				break
			}
		}
		bufs.Put(buf)
		reqs.Add(1)
		bytes.Add(n)
		if strings.HasSuffix(r.URL.Path, "/api/v1/write") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[]"))
	})}
	fmt.Printf("discard listening on http://%s\n", l.Addr())
	go func() { _ = srv.Serve(l) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	fmt.Printf("discard: %d requests, %d bytes\n", reqs.Load(), bytes.Load())
}
