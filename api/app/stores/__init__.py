"""The stores: their protocols (ports.py), the snapshot format, and one package per backend
(memory/, postgres/). The migration router that stands in front of them is app.migration."""
