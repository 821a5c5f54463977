"""Charts beside the benchmark tables: matplotlib when it is installed
(scripts/bench installs Debian's python3-matplotlib), nothing otherwise."""


def pyplot():
    """matplotlib.pyplot drawing to files (Agg), or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt
