package vulndb

import (
	"context"
	"runtime"
	"sync"
)

// pipeline runs fn on items 0…n-1 on up to GOMAXPROCS goroutines and hands
// the results to consume one at a time, in item order. It stops at the
// first error from consume, or when ctx is done, and returns only after
// every goroutine it started has finished.
func pipeline[R any](ctx context.Context, n int, fn func(i int) R, consume func(R) error) error {
	workers := max(1, min(runtime.GOMAXPROCS(0), n))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	type job struct {
		i   int
		out chan R
	}
	jobs := make(chan job)
	queue := make(chan chan R, 4*workers)
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				j.out <- fn(j.i)
			}
		})
	}
	wg.Go(func() {
		defer close(queue)
		defer close(jobs)
		for i := range n {
			out := make(chan R, 1)
			select {
			case jobs <- job{i, out}:
			case <-ctx.Done():
				return
			}
			select {
			case queue <- out:
			case <-ctx.Done():
				return
			}
		}
	})
	for out := range queue {
		select {
		case r := <-out:
			if err := consume(r); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}
