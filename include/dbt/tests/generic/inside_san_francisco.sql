{#- Rows whose coordinates lie outside San Francisco: the same box as the pipeline's
    quarantine rule (sfpd.schema.SF_BBOX). Rows without coordinates pass. -#}
{% test inside_san_francisco(model, latitude='latitude', longitude='longitude') %}

select *
from {{ model }}
where
    {{ latitude }} is not null
    and (
        {{ latitude }} not between 37.60 and 37.95
        or {{ longitude }} not between -122.55 and -122.30
    )

{% endtest %}
