"""The trace store's own cost: the search and the monitor at a full store, and the store's writes."""
