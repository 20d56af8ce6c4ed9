"""Published numbers the analysis tools start from (no imports: the command line lists them without torch)."""

#: (m, n) the project site publishes for the learnable sigmoid, per dataset.
PUBLISHED_MN = {
    "finegym": (1.05, -2.67),
    "hmdb51": (0.2646, -0.6615),
    "mpii_cooking2": (0.257, 0.053),
    "ucf_crime": (0.8916, -0.2543),
}
