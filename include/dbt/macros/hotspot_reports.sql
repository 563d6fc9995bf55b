{#- The reports the hotspot marts count (from int_incident_reports, which fct_incident_reports
    publishes): located in a neighborhood, and, unless
    var('include_sensitive_categories'), with no offence in a sensitive category. -#}
{% macro hotspot_reports() -%}
    select * from {{ ref('int_incident_reports') }}
    where
        analysis_neighborhood is not null
        {%- if not var('include_sensitive_categories') %}
            and not has_sensitive_offence
        {%- endif %}
{%- endmacro %}
