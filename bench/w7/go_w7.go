// W7 in Go: C goroutines share N reads of 4 KB through one os.File's ReadAt (pread(2); a goroutine
// blocked in it holds its thread, and the runtime lends its P to another), at the offsets of the LCG
// that bench/w7.c describes, with its checksum.
//
//	go_w7 FILE N C
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const block = 4096

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go_w7 FILE N C")
		os.Exit(2)
	}
	n, err1 := strconv.Atoi(os.Args[2])
	c, err2 := strconv.Atoi(os.Args[3])
	if err1 != nil || err2 != nil || n < 1 || c < 1 {
		fmt.Fprintln(os.Stderr, "usage: go_w7 FILE N C")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_w7:", err)
		os.Exit(2)
	}
	st, err := f.Stat()
	if err != nil || st.Size() < block {
		fmt.Fprintln(os.Stderr, "go_w7: unreadable or under 4 KB:", os.Args[1])
		os.Exit(2)
	}
	blocks := uint32(st.Size() / block)
	if c > n {
		c = n
	}
	sums := make([]uint64, c)
	short := make([]bool, c)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < c; i++ {
		count := n / c
		if i < n%c {
			count++
		}
		wg.Add(1)
		go func(i, count int) {
			defer wg.Done()
			buf := make([]byte, block)
			s := uint32(i + 1)
			var sum uint64
			for ; count > 0; count-- {
				s = s*1664525 + 1013904223
				if k, err := f.ReadAt(buf, int64((s>>8)%blocks)*block); err != nil || k != block {
					short[i] = true
					return
				}
				sum += uint64(binary.LittleEndian.Uint32(buf)) + uint64(binary.LittleEndian.Uint32(buf[block-4:]))
			}
			sums[i] = sum
		}(i, count)
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	var sum uint64
	for i := range sums {
		if short[i] {
			fmt.Fprintln(os.Stderr, "go_w7: a read came back short of 4 KB")
			os.Exit(1)
		}
		sum += sums[i]
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("workload=W7 impl=go n=%d wall_s=%.4f rss_kb=%d conc=%d gomaxprocs=%d reads_per_s=%.0f ns_per_read=%.1f checksum=%d\n",
		n, wall, ru.Maxrss, c, runtime.GOMAXPROCS(0), float64(n)/wall, wall*1e9/float64(n), sum)
}
