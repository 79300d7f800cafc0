"""performance: realized metrics on matured cohorts, label-free estimates on every cohort, the verdict."""
