// W4 over https in Go: net/http's TLS server (ServeTLS, as ListenAndServeTLS does: TLS 1.3 by default,
// keep-alive) answering "hello", as the shared W4 peer does over plain HTTP. HTTP/2 is off (an empty
// TLSNextProto), so that wrk's HTTP/1.1 is what is compared.
//
//	go_w4tls PORT SECONDS CERT KEY     port 0 picks a free one; prints "impl=go port=N" once listening
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func die(status int, what ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"go_w4tls:"}, what...)...)
	os.Exit(status)
}

func main() {
	if len(os.Args) != 5 {
		die(2, "usage: go_w4tls PORT SECONDS CERT KEY")
	}
	life, err := time.ParseDuration(os.Args[2] + "s")
	if err != nil {
		die(2, "SECONDS:", err)
	}
	// The files are read before listening: a bad one is said, not a server failing every handshake.
	cert, err := tls.LoadX509KeyPair(os.Args[3], os.Args[4])
	if err != nil {
		die(1, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("hello"))
		}),
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		die(1, err)
	}
	fmt.Printf("impl=go port=%d\n", ln.Addr().(*net.TCPAddr).Port)
	time.AfterFunc(life, func() { os.Exit(0) })
	die(1, srv.ServeTLS(ln, "", ""))
}
