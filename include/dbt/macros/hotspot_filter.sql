{#- Which reports the hotspot marts count: located in a neighborhood, and, unless
    var('include_sensitive_categories'), with no offence in a sensitive category. -#}
{% macro hotspot_filter() -%}
    analysis_neighborhood is not null
    {%- if not var('include_sensitive_categories') %}
        and not has_sensitive_offence
    {%- endif %}
{%- endmacro %}
