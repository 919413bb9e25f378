"""What the adapter and the controller both stand on: quantities, label selectors, YAML read with its line
numbers, the configuration error, the metric catalog (with a constant for every metric's name) and each
formula both halves compute (a resource group held at its limit, the executors a Spark application asks
for), written once so the HPA and the controller never see two numbers for one thing.

``core`` imports no other package of this project.
"""
