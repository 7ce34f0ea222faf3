"""Decide each Mac's state: inventory state, Entra registration per user, and compliance.

The core is pure: the functions take a computer, its user accounts, the tenant's settings and its
enabled policies (model instances or any objects with the same attributes) and a time, and return
plain results. :func:`evaluate_tenant` is the set-based edge: it loads a tenant's Macs in a bounded
number of queries, evaluates them in Python and writes back only the results that changed, grouped
into a few bulk ``UPDATE`` statements (rows sharing a result share a statement).

Rules (design section 5, seed summary steps 2, 4 and 7):

- Inventory state: 1 deactivated when the Mac is retired or no longer managed; 2 unresponsive when
  its last recurring check-in is more than ``unresponsive_after_hours`` ago (or never happened);
  0 activated otherwise. Exactly on the line is still activated.
- Registration, per user account: registered when the pair has an Entra device ID and an Entra
  user ID; otherwise a suspected AccountNotOnboarded when Company Portal has been installed for
  more than ``account_not_onboarded_days`` (the user opened Company Portal by hand instead of
  from Self Service), else not started. The computer is registered when any user is.
- Compliance of a (computer, user) pair: every enabled policy applies; a pair is notCompliant when
  it fails any rule of any policy, when its last inventory is older than the tenant's
  ``compliance_validity_days``, when the Mac is no longer managed, or when no enabled policy
  exists and the tenant does not treat such Macs as compliant. Password rules read the user's
  attributes; a NotEnforced (null) value fails a rule that asks for a value.
- The computer's status is its worst pair. The pairs that count are the ones reported to Intune
  (registered users) when there are any, else all of them; a Mac without user accounts is one
  pair without a user.
"""

from compliance.evaluation.core import (
    ACCOUNT_NOT_ONBOARDED,
    ACTIVATED,
    COMPLIANT,
    DEACTIVATED,
    NOT_COMPLIANT,
    NOT_STARTED,
    REGISTERED,
    UNRESPONSIVE,
    ComputerResult,
    Failure,
    PairResult,
    Requirements,
    computer_failures,
    evaluate_computer,
    explain,
    inventory_state,
    is_account_not_onboarded_suspect,
    lines,
    registration_state,
    user_failures,
)
from compliance.evaluation.store import EvaluationResult, evaluate_tenant
from compliance.evaluation.sweep import sweep_candidates, sweep_tenant

__all__ = [
    "ACCOUNT_NOT_ONBOARDED", "ACTIVATED", "COMPLIANT", "DEACTIVATED", "NOT_COMPLIANT", "NOT_STARTED", "REGISTERED",
    "UNRESPONSIVE", "ComputerResult", "EvaluationResult", "Failure", "PairResult", "Requirements",
    "computer_failures", "evaluate_computer", "evaluate_tenant", "explain", "inventory_state",
    "is_account_not_onboarded_suspect", "lines", "registration_state", "sweep_candidates", "sweep_tenant",
    "user_failures",
]
