"""scenegen: synthetic structured-scene datasets with ground truth and an automatic rule checker."""
