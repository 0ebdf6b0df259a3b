"""Fitting: the Bayesian and point models, their samplers and optimisers, and the result objects.

``ScalingModel`` builds the PyMC graph and samples it (``graph``, ``centring``, ``sampling``);
``PointModel`` and its approaches fit point estimates; ``ScalingFit`` and ``PointFit`` hold what was
learned and call the analyses below them.
"""
