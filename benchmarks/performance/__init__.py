"""benchmarks/performance: kfpkit performance vs NannyML's CBPE; the labelled traffic of its accuracy suite."""
