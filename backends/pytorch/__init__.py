"""PyTorch backend: the binarized ResNet-20 of the FDA-BNN model zoo, its sign estimators and noise
adaptation module, trained on device-resident uint8 CIFAR-10 (backend.py holds the Backend)."""
