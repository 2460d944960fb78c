"""``python -m benchmarks``: run the benchmark suite; ``python -m benchmarks
soak``: run the reliability probes (see benchmarks/soak.py)."""
import sys

if __name__ == '__main__':
    if sys.argv[1:2] == ['soak']:
        from benchmarks.soak import main
        sys.exit(main(sys.argv[2:]))
    from benchmarks.run import main
    sys.exit(main())
