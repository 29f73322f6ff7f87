// W6 in Go: net/http whose handler sleeps 10 ms (a stand-in for a backend) before it answers "hello".
//
//	go_w6 PORT SECONDS     port 0 picks a free one; prints "impl=go port=N" once listening
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go_w6 PORT SECONDS")
		os.Exit(2)
	}
	seconds, err := strconv.ParseFloat(os.Args[2], 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_w6: SECONDS:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_w6:", err)
		os.Exit(1)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello"))
	})
	fmt.Printf("impl=go port=%d\n", ln.Addr().(*net.TCPAddr).Port)
	go func() {
		time.Sleep(time.Duration(seconds * float64(time.Second)))
		os.Exit(0)
	}()
	http.Serve(ln, nil)
}
