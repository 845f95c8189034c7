import Numerics
print("bragg")
