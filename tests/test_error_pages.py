"""Error pages speak plainly and give nothing away."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_not_found_page_is_plain_and_does_not_confirm_the_record_exists(client, patient, other_patient):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "We could not find that page" in text
    assert "someone else's record" in text
    assert other_patient.family_name not in text
