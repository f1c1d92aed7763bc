"""Image classification workload (the MNIST family of lab28.data.specs, Fashion-MNIST by default): three CNNs
compared with per-class metrics, figures and TensorBoard logs. The engine reaches it through workload.WORKLOAD."""
