// Module Preparation: see ../shared/DESIGN.md for what it owns.
import Numerics
