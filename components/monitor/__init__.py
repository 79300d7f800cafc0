"""monitor: compares a live window with a model version's monitoring baseline and says which features drifted."""
