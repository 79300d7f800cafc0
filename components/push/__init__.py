"""push: copies a blessed model directory (and its TFDV baseline) into the versioned model registry."""
