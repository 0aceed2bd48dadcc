"""vvk-pbx: switchboard and referral system for Swedish municipalities on Asterisk ARI."""

__version__ = "0.1.0"
