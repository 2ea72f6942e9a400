"""PyTorch backend: the networks of bench/networks (the FDA-BNN model zoo's ResNet-20, VGG-small),
their sign estimators and noise adaptation module, trained on device-resident uint8 CIFAR-10
(backend.py holds the Backend)."""
